package apachekafka

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHome writes a distribution whose core jar holds the given classes.
func fakeHome(t *testing.T, jarName string, classes ...string) string {
	t.Helper()
	dir := t.TempDir()
	libs := filepath.Join(dir, "libs")
	if err := os.MkdirAll(libs, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(libs, jarName))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, c := range classes {
		w, _ := zw.Create(strings.ReplaceAll(c, ".", "/") + ".class")
		w.Write([]byte{0xca, 0xfe, 0xba, 0xbe})
	}
	zw.Close()
	f.Close()
	return dir
}

func TestCheckHomeAcceptsAKafka4Distribution(t *testing.T) {
	dir := fakeHome(t, "kafka_2.13-4.1.1.jar", ServerClass, StorageClass)
	h, err := CheckHome(dir, "--kafka-home")
	if err != nil || h.Version != "4.1.1" || h.Libs() != filepath.Join(dir, "libs", "*") {
		t.Fatalf("CheckHome: %+v, %v", h, err)
	}
}

// A wrong KAFKA_HOME is named with what is wrong with it.
func TestCheckHomeNamesWhatIsWrong(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(empty, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(empty, "nope"), "KAFKA_HOME " + filepath.Join(empty, "nope") + ": no such directory"},
		{file, "not a directory"},
		{empty, "no libs/ folder"},
		{fakeHome(t, "kafka-clients-4.1.1.jar"), "no kafka_2.13-<version>.jar"},
		{fakeHome(t, "kafka_2.13-3.9.0.jar", ServerClass, StorageClass), "Apache Kafka 3.9.0 is too old"},
		{fakeHome(t, "kafka_2.13-4.1.1.jar", ServerClass), "has no class kafka.tools.StorageTool"},
	} {
		_, err := CheckHome(c.dir, "KAFKA_HOME")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckHome(%s) = %v, want an error containing %q", c.dir, err, c.want)
		}
	}
	if _, err := FindHome("", "", ""); err != nil && !strings.Contains(err.Error(), "make kafka") {
		t.Errorf("no Kafka anywhere: %v, want a pointer to 'make kafka'", err)
	}
}

// fakeJava is a java whose -version prints the given line (as java does,
// on stderr).
func fakeJava(t *testing.T, versionLine string) string {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "bin"), 0o755)
	script := "#!/bin/sh\necho '" + versionLine + "' >&2\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "java"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestFindJavaRefusesJavaOlderThan17(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want string
	}{
		{`openjdk version "17.0.15" 2025-04-15`, true, ""},
		{`openjdk version "21" 2023-09-19`, true, ""},
		{`openjdk version "11.0.2" 2019-01-15`, false, "is Java 11; Apache Kafka 4 needs Java 17 or newer"},
		{`java version "1.8.0_392"`, false, "is Java 8"},
		{`no version here`, false, "cannot read a version"},
	} {
		j, err := FindJava(fakeJava(t, c.line))
		if c.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %+v, %v; want ok=%v %q", c.line, j, err, c.ok, c.want)
		}
	}
	if _, err := FindJava(t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no bin/java") {
		t.Errorf("JAVA_HOME without java: %v", err)
	}
}

// The node's configuration: combined KRaft node with a static quorum,
// advertising its own listener, replicating like the lab's topics.
func TestNodePropertiesAreAStaticCombinedKRaftNode(t *testing.T) {
	n := Node{ID: 2, Listen: "127.0.0.1:9129", Controller: "127.0.0.1:9132", Voters: "1@127.0.0.1:9131,2@127.0.0.1:9132,3@127.0.0.1:9133",
		Data: "/d", ClusterID: "AAAAAAAAAAAAAAAAAAAAAA", Replication: 3, MinISR: 2}
	props := n.Properties()
	for _, want := range []string{
		"process.roles=broker,controller", "node.id=2", "controller.quorum.voters=1@127.0.0.1:9131,2@127.0.0.1:9132,3@127.0.0.1:9133",
		"listeners=PLAINTEXT://127.0.0.1:9129,CONTROLLER://127.0.0.1:9132", "advertised.listeners=PLAINTEXT://127.0.0.1:9129",
		"log.dirs=/d/logs", "auto.create.topics.enable=false", "min.insync.replicas=2", "offsets.topic.replication.factor=3",
	} {
		if !strings.Contains(props, want+"\n") {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
}

func TestRunnerRejectsBadFlags(t *testing.T) {
	base := func() *Runner {
		return &Runner{id: 1, heap: "256m", replication: 3, minISR: 2,
			node: Node{Listen: "127.0.0.1:1", Controller: "127.0.0.1:2", Voters: "1@127.0.0.1:2", Data: "/d", ClusterID: "AAAAAAAAAAAAAAAAAAAAAA"}}
	}
	for _, c := range []struct {
		edit func(r *Runner)
		want string
	}{
		{func(r *Runner) { r.node.Listen = "10.0.0.1:9092" }, "--listen"},
		{func(r *Runner) { r.node.Voters = "2@127.0.0.1:2" }, "--voters"},
		{func(r *Runner) { r.node.ClusterID = "short" }, "--cluster-id"},
		{func(r *Runner) { r.heap = "lots" }, "--heap"},
		{func(r *Runner) { r.minISR = 4 }, "--min-isr"},
		{func(r *Runner) { r.id = 0 }, "--node-id"},
	} {
		r := base()
		c.edit(r)
		if err := r.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate: %v, want an error about %s", err, c.want)
		}
	}
	if err := base().validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseGroupDescribe(t *testing.T) {
	out := `
GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                          HOST            CLIENT-ID
ratings-stream  ratings         0          41              41              0               ratings-stream-1f2e                  /127.0.0.1      ratings-stream
ratings-stream  ratings         1          -               12              -               -                                    -               -
`
	rows, err := ParseGroupDescribe(out)
	if err != nil || len(rows) != 2 || rows[0].Current != 41 || rows[0].LogEnd != 41 || rows[0].ConsumerID != "ratings-stream-1f2e" || rows[1].Current != -1 || rows[1].LogEnd != 12 {
		t.Fatalf("rows %+v, %v", rows, err)
	}
	if _, err := ParseGroupDescribe("Consumer group 'x' does not exist."); err == nil {
		t.Fatal("no table: want an error")
	}
}
