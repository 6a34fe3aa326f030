package auth

import (
	"os"
	"testing"

	"gatehouse/internal/dbtest"
)

// hogEnv makes the test binary a busy loop instead (see startHogs).
const hogEnv = "GATEHOUSE_TEST_HOG"

func TestMain(m *testing.M) {
	if os.Getenv(hogEnv) == "1" {
		for {
		}
	}
	os.Exit(dbtest.Main(m))
}
