"""The diff report: data from Redis (`data`) and its renderings (`render`)."""
