"""The course part of dlcourse: what exists for one chapter, found by the chapter's number and name.

``dlcourse/course/chNN_topic/`` belongs to ``notebooks/NN_topic.ipynb``: its exercises (``exercises.py``),
widgets, toy problems and helpers. The library (``dlcourse.nn``, ``optim``, ``data`` and the general tools)
mirrors PyTorch and never imports from here. Shared by all chapters: ``checker`` (check / hint /
solution / use / progress; it imports no chapter, and loads chapter N's ``exercises`` when a name ``"chN.…"``
is first looked up) and ``widget`` (the base class of every interactive figure).
"""
