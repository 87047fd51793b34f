"""The counselor's web page, the EHR's doors into it, and the chart write-back."""

import logging

# httpx logs every request's URL at INFO, query string and all: a chart search names the patient there.
# The doors to the EHR log nothing of a patient, so httpx's own lines stay below what any handler shows.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level < logging.WARNING:
        logging.getLogger(_name).setLevel(logging.WARNING)
