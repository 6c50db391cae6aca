"""Embedding: images -> L2-normalised feature vectors, cached by (content hash, model).

``backbones`` turns a model setting into a ``Backbone`` (one interface for
EfficientNet-Lite and any ``keras.applications`` network); ``pipeline`` streams
images through it in batches and stores the vectors as they are produced.
"""
