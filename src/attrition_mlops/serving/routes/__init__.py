"""Small routers, one per concern; the app factory decides which need authentication."""
