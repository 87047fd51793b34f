"""The counselor's web page and the Infobutton door, on the warm render workers."""
