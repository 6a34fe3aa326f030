//go:build !linux

package auth

// lowerThreadPriority is a no-op where threads cannot be reniced one by
// one; the pool still keeps hashing off the requests' Ps.
func lowerThreadPriority() {}
