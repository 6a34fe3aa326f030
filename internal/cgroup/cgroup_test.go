package cgroup

import (
	"testing"
	"testing/fstest"
)

func TestMemoryMax(t *testing.T) {
	tests := []struct {
		name   string
		files  fstest.MapFS
		want   int64
		wantOK bool
	}{
		{"container, own namespace", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("268435456\n")},
		}, 268435456, true},
		{"service, host namespace", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("0::/system.slice/gatehouse.service\n")},
			"sys/fs/cgroup/system.slice/gatehouse.service/memory.max": {Data: []byte("1073741824\n")},
		}, 1 << 30, true},
		{"no limit", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
		}, 0, false},
		{"cgroup v1 only", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("12:memory:/docker/abc\n")},
		}, 0, false},
		{"no memory controller", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("0::/\n")},
		}, 0, false},
		{"not Linux", fstest.MapFS{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MemoryMax(tt.files)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("MemoryMax = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
