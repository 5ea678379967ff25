package main

import (
	"fmt"
	"os"
	"strings"
)

// command is one "synfs NAME": its usage line, a summary for the command
// list, and its function.
type command struct {
	name, args, summary string
	run                 func(args []string) int
}

// commands is the dispatch table, in the order "synfs help" lists them.
var commands []command

func init() {
	commands = []command{
		{"mount", "MOUNTPOINT [flags]", "mount your Synapse projects (or --root synID) at MOUNTPOINT", cmdMount},
		{"status", "[MOUNTPOINT] [--json] [--watch]", "what is not yet in Synapse: per file state, progress and reason", cmdStatus},
		{"wait", "[MOUNTPOINT] [--timeout D]", "wait until everything staged now is in Synapse", cmdWait},
		{"unmount", "MOUNTPOINT [--now]", "wait for the uploads, then unmount (--now: at once)", cmdUnmount},
		{"retry", "PATH|--all", "upload failed files again now", cmdRetry},
		{"discard", "PATH", "delete a failed or empty staged file from the cache", cmdDiscard},
		{"annotate", "MANIFEST [flags]", "apply a synapse manifest/sync TSV's annotations to files in the mount", cmdAnnotate},
		{"emulator", "[flags]", "serve a local Synapse emulator (for trying synfs and for tests)", cmdEmulator},
		{"version", "", "print the version", cmdVersion},
		{"help", "[COMMAND]", "show help for a command", cmdHelp},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("synfs mounts Synapse (synapse.org) as a file system: copy files in with cp.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  synfs %-42s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	b.WriteString("\nRun \"synfs help COMMAND\" (or \"synfs COMMAND --help\") for a command's flags.\n")
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage())
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		name = "help"
	}
	if name == "--version" {
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args[1:])
		}
	}
	if isHelperForm(args) {
		return cmdMountHelper(args)
	}
	fmt.Fprintf(os.Stderr, "synfs: unknown command %q\n\n%s", args[0], usage())
	return 2
}

func cmdHelp(args []string) int {
	if len(args) == 0 {
		fmt.Print(usage())
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] && c.name != "help" {
			return c.run([]string{"--help"})
		}
	}
	if args[0] == "help" {
		fmt.Print(usage())
		return 0
	}
	fmt.Fprintf(os.Stderr, "synfs: unknown command %q\n\n%s", args[0], usage())
	return 2
}

// fail prints one plain line and returns the exit code.
func fail(code int, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "synfs: "+format+"\n", a...)
	return code
}
