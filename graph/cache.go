package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vektah/gqlparser/v2/ast"
)

// Cache sizes, in bytes. Hundreds of ordinary documents fit; the process
// runs with GOGC=400, so that each byte kept alive can cost five.
const (
	// queryCacheBytes bounds the parsed-query cache; a parsed document
	// costs its text and astBytesPerToken per token.
	queryCacheBytes = 4 << 20
	// apqCacheBytes bounds the APQ cache (hashes and query texts).
	apqCacheBytes = 1 << 20
	// astBytesPerToken is the most that gqlparser's validated AST was
	// measured to take per token (400 for __typename fields; 100 to 220
	// for other fields, values, arguments; 110 for full introspection).
	astBytesPerToken = 400
	// entryBytes is what the cache itself takes per entry.
	entryBytes = 128
)

// byteLRU is a least-recently-used cache bounded by the bytes its entries
// take, as cost estimates them.
type byteLRU[T any] struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[string, sized[T]]
	cost  func(key string, v T) int
	bytes int
	max   int
}

type sized[T any] struct {
	v    T
	cost int
}

var _ graphql.Cache[string] = (*byteLRU[string])(nil)

func newByteLRU[T any](max int, cost func(key string, v T) int) *byteLRU[T] {
	c := &byteLRU[T]{cost: cost, max: max}
	// simplelru bounds entries; this cache bounds bytes instead, so the
	// entry bound is one that bytes always reach first.
	c.lru, _ = simplelru.NewLRU(max/entryBytes+1, func(_ string, e sized[T]) { c.bytes -= e.cost })
	return c
}

// Get returns the value of key and marks it used.
func (c *byteLRU[T]) Get(_ context.Context, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(key)
	return e.v, ok
}

// Add stores v under key, evicting the least recently used entries until
// the cache is within its bytes. An entry larger than the whole cache is
// not stored.
func (c *byteLRU[T]) Add(_ context.Context, key string, v T) {
	cost := c.cost(key, v) + entryBytes
	if cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(key) // a concurrent miss may add it twice
	c.lru.Add(key, sized[T]{v, cost})
	c.bytes += cost
	for c.bytes > c.max {
		c.lru.RemoveOldest()
	}
}

// queryCache is the parsed-query cache: the executor adds a document once
// it is validated, and documentLimits skips documents found there. Only
// documents within the limits get that far.
type queryCache = byteLRU[*ast.QueryDocument]

func newQueryCache(maxTokens int) *queryCache {
	return newByteLRU(queryCacheBytes, func(query string, _ *ast.QueryDocument) int {
		return len(query) + astBytesPerToken*countTokens(query, maxTokens)
	})
}

func newAPQCache() *byteLRU[string] {
	return newByteLRU(apqCacheBytes, func(hash, query string) int { return len(hash) + len(query) })
}
