package stream

import "testing"

func TestEpochUnitsSplitLevel(t *testing.T) {
	tests := []struct {
		name      string
		rowGroups [][]int64
		world     int
		want      string // "file", "row group" or "rows"
	}{
		{"enough files", uniform(5, 3, 4), 2, "file"},
		{"fewer files than ranks", uniform(2, 3, 4), 3, "row group"},
		{"fewer row groups than ranks", uniform(1, 2, 9), 3, "rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := newFakeSource(tt.rowGroups).files()
			fileRank := map[int]int{}
			rgRank := map[[2]int]int{}
			for rank := range tt.world {
				for _, u := range epochUnits(files, 1, 0, rank, tt.world) {
					if r, ok := fileRank[u.file]; ok && r != rank && tt.want == "file" {
						t.Fatalf("file %d is read by ranks %d and %d, want whole files per rank", u.file, r, rank)
					}
					fileRank[u.file] = rank
					key := [2]int{u.file, u.rg}
					if r, ok := rgRank[key]; ok && r != rank && tt.want != "rows" {
						t.Fatalf("row group %v is read by ranks %d and %d, want whole row groups", key, r, rank)
					}
					rgRank[key] = rank
					whole := u.n == tt.rowGroups[u.file][u.rg]
					if whole != (tt.want != "rows") {
						t.Fatalf("unit %+v: whole row group %v, want a %s split", u, whole, tt.want)
					}
				}
			}
		})
	}
}
