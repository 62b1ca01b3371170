# ferry (like Passenger) loads this file and serves its `application`.
from app import app as application  # noqa: F401
