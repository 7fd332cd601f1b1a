"""What the export's worker processes load before they fork: the archive, with pyarrow warmed up.

pyarrow imports pandas (when it is installed) the first time it converts Python objects; doing
that once in the fork server instead of once in every worker saves each worker a third of a second.
"""

import pyarrow as pa

import sessionkit.archive  # noqa: F401  (the workers' code)

pa.array(["warm"])
