// Package apachekafka runs real Apache Kafka for the lab: it finds a Kafka
// distribution (the jars `make kafka` fetches from Maven Central into
// .cache/kafka, or an unpacked distribution given by --kafka-home /
// KAFKA_HOME) and a Java 17+, runs one KRaft node (`lab serve kafka-node`,
// which formats its storage and then becomes the JVM), probes a node's
// health, and runs Kafka's own command-line tools from the same jars.
package apachekafka

import (
	"archive/zip"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Home is an Apache Kafka distribution: a folder with libs/*.jar.
type Home struct {
	Dir     string // the folder (KAFKA_HOME)
	Version string // e.g. "4.1.1", from the kafka_2.13-<version>.jar
}

// Libs is the classpath of every jar in libs/.
func (h Home) Libs() string { return filepath.Join(h.Dir, "libs", "*") }

// FetchedHome is where `make kafka` puts the jars, relative to the repository.
const FetchedHome = ".cache/kafka"

// The classes the lab runs (checked in the core jar, like `jar tf`).
const (
	ServerClass  = "kafka.Kafka"
	StorageClass = "kafka.tools.StorageTool"
)

var coreJar = regexp.MustCompile(`^kafka_2\.1[23]-(\d+\.\d+\.\d+)\.jar$`)

// FindHome picks the Kafka distribution: the --kafka-home flag, else
// KAFKA_HOME, else the jars `make kafka` fetched (next to the lab binary's
// repository, or under the working directory).
func FindHome(flagDir, envDir, exe string) (Home, error) {
	switch {
	case flagDir != "":
		return CheckHome(flagDir, "--kafka-home")
	case envDir != "":
		return CheckHome(envDir, "KAFKA_HOME")
	}
	var tried []string
	for _, dir := range fetchedCandidates(exe) {
		tried = append(tried, dir)
		if h, err := CheckHome(dir, "the fetched Kafka"); err == nil {
			return h, nil
		}
	}
	return Home{}, fmt.Errorf("no Apache Kafka found (looked in %s): run 'make kafka' to fetch it from Maven Central into %s, or give --kafka-home DIR (or KAFKA_HOME=DIR) pointing at an unpacked Apache Kafka distribution", strings.Join(tried, ", "), FetchedHome)
}

// fetchedCandidates are .cache/kafka next to the binary's repository
// (bin/lab → ../.cache/kafka) and under the working directory and its parents.
func fetchedCandidates(exe string) []string {
	var out []string
	add := func(dir string) {
		for _, have := range out {
			if have == dir {
				return
			}
		}
		out = append(out, dir)
	}
	if exe != "" {
		add(filepath.Join(filepath.Dir(filepath.Dir(exe)), FetchedHome))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			add(filepath.Join(dir, FetchedHome))
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil || filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return out
}

// CheckHome checks that dir is a Kafka distribution that can run a KRaft
// node; errors name source (the flag or variable it came from).
func CheckHome(dir, source string) (Home, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Home{}, fmt.Errorf("%s %s: %w", source, dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Home{}, fmt.Errorf("%s %s: no such directory", source, dir)
	}
	if !st.IsDir() {
		return Home{}, fmt.Errorf("%s %s: not a directory", source, dir)
	}
	libs := filepath.Join(abs, "libs")
	entries, err := os.ReadDir(libs)
	if err != nil {
		return Home{}, fmt.Errorf("%s %s: no libs/ folder, so not an Apache Kafka distribution (want %s/libs/kafka_2.13-<version>.jar; 'make kafka' fetches one)", source, dir, dir)
	}
	var core, version string
	for _, e := range entries {
		if m := coreJar.FindStringSubmatch(e.Name()); m != nil {
			core, version = filepath.Join(libs, e.Name()), m[1]
		}
	}
	if core == "" {
		return Home{}, fmt.Errorf("%s %s: libs/ has no kafka_2.13-<version>.jar, so not an Apache Kafka distribution ('make kafka' fetches one)", source, dir)
	}
	if major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); major < 4 {
		return Home{}, fmt.Errorf("%s %s: Apache Kafka %s is too old: the lab runs KRaft nodes of Kafka 4.0 or newer", source, dir, version)
	}
	if err := hasClasses(core, ServerClass, StorageClass); err != nil {
		return Home{}, fmt.Errorf("%s %s: %w", source, dir, err)
	}
	return Home{Dir: abs, Version: version}, nil
}

// hasClasses checks that a jar holds the named classes.
func hasClasses(jar string, classes ...string) error {
	r, err := zip.OpenReader(jar)
	if err != nil {
		return fmt.Errorf("%s: not a readable jar: %w", filepath.Base(jar), err)
	}
	defer r.Close()
	have := map[string]bool{}
	for _, f := range r.File {
		have[f.Name] = true
	}
	for _, c := range classes {
		if !have[strings.ReplaceAll(c, ".", "/")+".class"] {
			return fmt.Errorf("%s has no class %s", filepath.Base(jar), c)
		}
	}
	return nil
}

// MinJava is the oldest Java Kafka 4 brokers run on.
const MinJava = 17

// Java is a java executable and its major version.
type Java struct {
	Path  string
	Major int
}

// FindJava finds java ($JAVA_HOME/bin/java, else java on PATH) and checks
// that it is Java 17 or newer.
func FindJava(javaHome string) (Java, error) {
	path := ""
	if javaHome != "" {
		path = filepath.Join(javaHome, "bin", "java")
		if _, err := os.Stat(path); err != nil {
			return Java{}, fmt.Errorf("JAVA_HOME=%s has no bin/java; set JAVA_HOME to a JDK %d or newer, or unset it to use java from PATH", javaHome, MinJava)
		}
	} else {
		p, err := exec.LookPath("java")
		if err != nil {
			return Java{}, fmt.Errorf("java is not installed (not on PATH, no JAVA_HOME): Apache Kafka needs Java %d or newer", MinJava)
		}
		path = p
	}
	return CheckJava(path)
}

var javaVersion = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

// CheckJava runs `java -version` and checks the major version.
func CheckJava(path string) (Java, error) {
	out, err := exec.Command(path, "-version").CombinedOutput()
	if err != nil {
		return Java{}, fmt.Errorf("%s -version failed: %v: %s", path, err, firstLine(out))
	}
	m := javaVersion.FindSubmatch(out)
	if m == nil {
		return Java{}, fmt.Errorf("%s -version: cannot read a version in %q", path, firstLine(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	if major == 1 && len(m[2]) > 0 { // 1.8 → 8
		major, _ = strconv.Atoi(string(m[2]))
	}
	if major < MinJava {
		return Java{}, fmt.Errorf("%s is Java %d; Apache Kafka 4 needs Java %d or newer (set JAVA_HOME to a newer JDK)", path, major, MinJava)
	}
	return Java{Path: path, Major: major}, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// ErrNotFormatted means a node's log dir has no meta.properties yet.
var ErrNotFormatted = errors.New("storage not formatted")
