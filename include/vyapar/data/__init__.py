"""Raw data: the generator, the landing folder and its checks, the PostgreSQL raw loader, the warehouse bootstrap."""
