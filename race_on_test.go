//go:build race

package main

// raceEnabled says the tests run with the race detector, so the binary they
// build for child processes is built with it too (and from the same cache).
const raceEnabled = true
