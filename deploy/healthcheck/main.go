// Command healthcheck asks a gatehouse on this host whether it is ready: it
// exits 0 when http://127.0.0.1:$PORT/readyz answers 200 within 3 seconds,
// and 1 otherwise, saying why on stderr.
//
// The container image has no shell and no HTTP client (distroless), so its
// HEALTHCHECK runs this instead: a few lines of the standard library, and
// nothing an intruder could use that the image did not already hold. PORT
// is the server's own setting (8080 by default); an argument, a full URL,
// overrides the address.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	url := "http://127.0.0.1:" + port + "/readyz"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	c := &http.Client{Timeout: 3 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "healthcheck: %s answered %s\n", url, res.Status)
		os.Exit(1)
	}
}
