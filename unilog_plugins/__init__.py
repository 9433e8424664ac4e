"""The backends that ship with unilog, each a plugin module registered like any third-party one."""
