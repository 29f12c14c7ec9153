"""catalog: products, listed at / and edited in the admin."""
