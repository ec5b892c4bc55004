"""The web layer: the JSON API, the embeddable widget and the Gradio chat, on one server."""
