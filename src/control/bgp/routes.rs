//! The routes file: one static protocol per family with a blackhole route
//! for each VIP address this instance announces. The operator's bird.conf
//! includes it and exports these protocols' routes to BGP; a blackhole is
//! never installed in the kernel (BIRD's kernel protocol is not fed from
//! them), so the host's own stack does not see the VIPs.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The static protocols' names, for bird.conf's export filters.
pub const PROTOCOL_V4: &str = "mplb_vips4";
pub const PROTOCOL_V6: &str = "mplb_vips6";

/// The file's text: both protocols always (an empty one still defines the
/// name bird.conf's filter refers to), routes in address order.
pub fn render(addresses: &BTreeSet<IpAddr>) -> String {
    let routes = |v6: bool| -> String {
        addresses
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| format!(" route {a}/{} blackhole;", if v6 { 128 } else { 32 }))
            .collect()
    };
    format!(
        "# written by mplb: the VIPs this instance announces (do not edit)\n\
         protocol static {PROTOCOL_V4} {{ ipv4;{} }}\n\
         protocol static {PROTOCOL_V6} {{ ipv6;{} }}\n",
        routes(false),
        routes(true)
    )
}

/// Replaces `path` by `text` atomically: a reader (BIRD's `configure`) sees
/// the old file or the new one, never a part. The folder is created if
/// missing; the file is readable by all (BIRD reads it as its own user).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
        addrs.iter().map(|a| a.parse().expect("address")).collect()
    }

    #[test]
    fn renders_both_families_even_when_empty() {
        assert_eq!(
            render(&set(&["198.18.0.10", "fd00::10", "198.18.0.9"])),
            "# written by mplb: the VIPs this instance announces (do not edit)\n\
             protocol static mplb_vips4 { ipv4; route 198.18.0.9/32 blackhole; route 198.18.0.10/32 blackhole; }\n\
             protocol static mplb_vips6 { ipv6; route fd00::10/128 blackhole; }\n"
        );
        let empty = render(&BTreeSet::new());
        assert!(
            empty.contains("protocol static mplb_vips4 { ipv4; }\n"),
            "{empty}"
        );
        assert!(
            empty.contains("protocol static mplb_vips6 { ipv6; }\n"),
            "{empty}"
        );
    }

    #[test]
    fn written_whole_with_no_temporary_left() {
        let dir = std::env::temp_dir().join(format!("mplb-routes-{}/sub", std::process::id()));
        let path = dir.join("vips.conf");
        write_atomically(&path, "one\n").expect("write");
        write_atomically(&path, "two\n").expect("replace");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let entries: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        assert_eq!(entries.len(), 1, "no temporary file left behind");
        let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
        // A folder that cannot be made is an error, not a panic.
        assert!(write_atomically(Path::new("/proc/mplb/vips.conf"), "x").is_err());
    }
}
