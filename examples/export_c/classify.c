/* Classify the digits test set with the exported MLP (digits.h / digits.so).
 *
 *     ./classify build/digits_test.bin
 *
 * prints "test accuracy: 0.xxx", the line `propc demo` ends with. C99; needs only
 * the exported library (and libc).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"

#define CLASSES 10

static int read_test_set(const char *path, float **images, int32_t **labels) {
    FILE *file = fopen(path, "rb");
    int32_t count = 0;
    int ok = 0;
    if (file == NULL) return -1;
    if (fread(&count, sizeof count, 1, file) == 1 && count == DIGITS_RUN_IN0_SIZE / 64) {
        *images = malloc(DIGITS_RUN_IN0_BYTES);
        *labels = malloc(sizeof(int32_t) * (size_t)count);
        ok = *images != NULL && *labels != NULL
             && fread(*images, 1, DIGITS_RUN_IN0_BYTES, file) == DIGITS_RUN_IN0_BYTES
             && fread(*labels, sizeof(int32_t), (size_t)count, file) == (size_t)count;
    }
    fclose(file);
    return ok ? count : -1;
}

static int argmax(const float *row) {
    int best = 0, k;
    for (k = 1; k < CLASSES; ++k)
        if (row[k] > row[best]) best = k;
    return best;
}

int main(int argc, char **argv) {
    float *images = NULL, *logits;
    int32_t *labels = NULL;
    int count, i, correct = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s digits_test.bin\n", argv[0]);
        return 2;
    }
    if (digits_abi_version() != DIGITS_ABI_VERSION || strcmp(digits_ir_hash(), DIGITS_IR_HASH)) {
        fprintf(stderr, "digits.so does not match digits.h: rebuild\n");
        return 1;
    }
    count = read_test_set(argv[1], &images, &labels);
    if (count < 0) {
        fprintf(stderr, "cannot read %s (or it does not match the exported shape)\n", argv[1]);
        return 1;
    }
    logits = malloc(DIGITS_RUN_OUT0_BYTES);
    if (logits == NULL || digits_run(images, logits, NULL) != DIGITS_OK) {
        fprintf(stderr, "digits_run failed\n");
        return 1;
    }
    for (i = 0; i < count; ++i)
        correct += argmax(logits + (size_t)i * CLASSES) == labels[i];
    printf("test accuracy: %.3f\n", (double)correct / count);
    free(images);
    free(labels);
    free(logits);
    return 0;
}
