//go:build race

package fs_test

// raceEnabled reports a build with the race detector (-race), which widens
// timing windows several fold.
const raceEnabled = true
