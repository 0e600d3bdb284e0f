"""The WeChat mini-program server API: login, phone number, subscribe messages."""
