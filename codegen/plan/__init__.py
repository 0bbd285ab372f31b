"""Planning, pure Python over the IR (no LLVM): which values get buffers (fusion.py),
affine index maps and views (affine.py, views.py), and the buffer plan (memplan.py).
"""
