//go:build race

package flood

const raceEnabled = true
