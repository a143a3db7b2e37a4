"""The Python API: `Engine` (open an engine directory or a checkpoint, answer questions about videos) and
`build`; `fastav_export.Engine` and `fastav_export.build` re-export them."""
