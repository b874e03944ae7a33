"""Dataset exports: the rows of each kind, the file writers per format, and the dataset card.

Everything here streams: rows come from the database in chunks and go to disk in chunks, so an
export's memory does not grow with the dataset. The service (annotations/services/exports.py)
puts the pieces together into an immutable, versioned snapshot.
"""
