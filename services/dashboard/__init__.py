"""The admin dashboard: server-rendered pages over memcube/, served by the API's app under /dashboard."""
