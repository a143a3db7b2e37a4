"""The OpenAI-compatible endpoint in front of a tritonserver (`fastav-export serve-openai`).

FastAPI and uvicorn are imported only by `app.py` and the command, so the rest of the package
imports without them (`pip install fastav-export[openai]`).
"""
