"""The output stage: HTML from templates, PDF from WeasyPrint, and whether it fits its layout."""
