"""What users hand the tool, checked before any work: JSON files, `.npy` embeddings,
output paths (written atomically), and whether a size fits in memory.

    json_input.py    one-line errors for unreadable, non-UTF-8, nested or malformed JSON
    embeds_file.py   `--embeds` .npy files: header checked against the model and the file size first
    output_paths.py  every output path checked up front; files written through a rename
    memory.py        `check_fits`: a size against the memory available (cgroup-aware)
    file_digest.py   sha256 of a file, in blocks
"""
