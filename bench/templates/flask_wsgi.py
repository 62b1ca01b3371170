"""The Flask app of ferry-bench's Flask table: one JSON endpoint.

    GET / -> {"message": "Hello, World!"} (application/json)
"""

from flask import Flask, jsonify

application = Flask(__name__)


@application.get("/")
def hello_json():
    return jsonify(message="Hello, World!")
