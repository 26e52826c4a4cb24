{ "targets": [ { "target_name": "rename_exchange", "sources": ["rename_exchange.c"] } ] }
