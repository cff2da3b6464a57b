"""The real text classification tasks: one module per source package, read from the installed
package's files (located with ``importlib``, never imported), and the split every task shares."""
