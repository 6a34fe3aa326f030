package graph

import (
	"fmt"

	"gatehouse/auth"
)

// Bounds of the sessions list.
const (
	defaultPage = 50
	maxPage     = 100
)

func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultPage, nil
	}
	if *first < 1 || *first > maxPage {
		return 0, &auth.InputError{Field: "first", Reason: fmt.Sprintf("must be 1 to %d", maxPage)}
	}
	return *first, nil
}
