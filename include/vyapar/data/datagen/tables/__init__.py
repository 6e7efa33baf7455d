"""One generator per family of raw tables (customers, the catalog and inventory, orders, clickstream, email
marketing), each deterministic for its seed and key (../keyed_random.py); batches.py calls them hour by hour."""
