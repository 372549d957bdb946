"""The HTTP face (FastAPI): create_app(settings), routers, authentication, one error shape."""
