package hierarchy

import "time"

// SetNow replaces the cache's clock (tests of TTL expiry).
func SetNow(c *Cache, now func() time.Time) { c.now = now }
