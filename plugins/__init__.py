"""scdd's built-in components. Each module here is a plugin registered through the ``scdd``
entry-point group, exactly as a third-party package registers its own."""
