"""One module per CLI command; ``cli`` only parses arguments and calls ``run``.

Each stage command reads the state the stage before it wrote and writes its own:
fetch -> catalog, embed -> vectors, index -> neighbours, map -> map points,
render -> the published site. ``build`` runs them in order.
"""
