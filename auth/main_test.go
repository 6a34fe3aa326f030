package auth

import (
	"os"
	"testing"
	"time"

	"gatehouse/internal/dbtest"
)

// hogEnv makes the test binary a busy loop instead (see startHogs).
const hogEnv = "GATEHOUSE_TEST_HOG"

func TestMain(m *testing.M) {
	if os.Getenv(hogEnv) == "1" {
		os.Stdout.WriteString("spinning\n")
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		}
		os.Exit(0)
	}
	os.Exit(dbtest.Main(m))
}
