"""The serving stage: answers to requests from outside (an EHR's Infobutton), built from loaded sections."""
