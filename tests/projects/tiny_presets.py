"""Config presets, reached from a target as an attribute of an imported module: presets.Small(depth=2)."""


class Small:
    def __init__(self, width=4, depth=1):
        self.width = width
        self.depth = depth
