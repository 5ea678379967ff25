package control

import "testing"

func TestParseMountinfo(t *testing.T) {
	line := `123 45 0:67 / /home/a/my\040synapse rw,nosuid,nodev,relatime shared:1 - fuse.synfs synfs:/home/a/.cache/synfs/x rw,user_id=1000,group_id=1000`
	m, ok := parseMountinfo(line)
	if !ok || m.Dir != "/home/a/my synapse" || m.CacheDir != "/home/a/.cache/synfs/x" || m.UID != 1000 {
		t.Fatalf("got %+v, %v", m, ok)
	}
	if _, ok := parseMountinfo(`1 2 0:3 / /mnt rw - ext4 /dev/sda1 rw`); ok {
		t.Error("an ext4 line parsed as synfs")
	}
	if m, _ := parseMountinfo(`1 2 0:3 / /mnt rw - fuse.synfs synfs rw,user_id=0`); m.CacheDir != "" {
		t.Errorf("plain source gave cache dir %q", m.CacheDir)
	}
}

func TestFSName(t *testing.T) {
	if got := FSName("/a/b"); got != "synfs:/a/b" {
		t.Errorf("FSName = %q", got)
	}
	if got := FSName("/a,b"); got != "synfs" {
		t.Errorf("FSName with comma = %q", got)
	}
}
