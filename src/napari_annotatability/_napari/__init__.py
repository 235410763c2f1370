"""The napari shell: reader, sample data, layer building and dock widgets over ``core``."""
