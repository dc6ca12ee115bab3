"""The import path of the API reference's examples."""
