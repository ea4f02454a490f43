"""The names of the files modelport keeps in an export folder, besides the artifact.

A leaf module (it imports nothing) so that the low-level store can name them too; everyone else imports them
from :mod:`modelport.folder.exportdir`, which reads and writes the folder.
"""

RECORD_FILE = "export.json"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.npz"
BENCH_FILE = "bench.json"
CARD_FILE = "README.md"

#: Written by every export next to the artifact; plugins never write these.
SIDE_FILES = (RECORD_FILE, METADATA_FILE, REFERENCE_FILE)
#: Every file an export folder may hold besides its artifact files: the side files, then what bench and
#: publishers add later (bench results, a model card).
KNOWN_FILES = (*SIDE_FILES, BENCH_FILE, CARD_FILE)
