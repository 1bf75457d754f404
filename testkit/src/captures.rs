//! Reading the outside captures (classic pcap and pcapng, Ethernet) for the corpus tests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use pcap_file::{
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
    DataLink,
};

pub struct Capture {
    pub frames: Vec<Vec<u8>>,
    /// Why records fail pcap-file's checked conversion (the frames are used as captured).
    pub unchecked: Vec<String>,
    /// The raw link-type field, when it carries FCS bits beside Ethernet.
    pub fcs_bits: Option<u32>,
}

pub enum ReadError {
    /// A genuine format or link type pcap-file (or this test) does not handle.
    Unsupported(String),
    /// The file should have been readable.
    Broken(String),
}

pub fn read_capture(path: &Path) -> Result<Capture, ReadError> {
    let file = File::open(path).map_err(|e| ReadError::Broken(format!("open: {e}")))?;
    let reader = BufReader::new(file);
    match path.extension().and_then(|e| e.to_str()) {
        Some("pcap") => read_pcap(reader),
        Some("pcapng") => read_pcapng(reader),
        other => Err(ReadError::Unsupported(format!("extension {other:?}"))),
    }
}

fn read_pcap(reader: BufReader<File>) -> Result<Capture, ReadError> {
    let mut r = PcapReader::new(reader).map_err(|e| ReadError::Broken(format!("header: {e}")))?;
    let header = r.header();
    let mut cap = Capture {
        frames: Vec::new(),
        unchecked: Vec::new(),
        fcs_bits: None,
    };
    if header.datalink != DataLink::ETHERNET {
        // pcap-file 2 reads the whole 32-bit field as the link type; the pcap format keeps the link
        // type in the low 16 bits and FCS information above (bits 26-31, as libpcap's
        // LT_LINKTYPE / LT_FCS_LENGTH_PRESENT / LT_FCS_LENGTH; bits 16-25 reserved).
        let raw = u32::from(header.datalink);
        let fcs_present = raw & 0x0400_0000 != 0;
        let fcs_words = raw >> 28;
        if raw & 0xffff != 1 || raw & 0x03ff_0000 != 0 || (fcs_present && fcs_words != 0) {
            return Err(ReadError::Unsupported(format!(
                "link type field {raw:#010x}"
            )));
        }
        cap.fcs_bits = Some(raw);
    }
    while let Some(raw) = r.next_raw_packet() {
        let raw =
            raw.map_err(|e| ReadError::Broken(format!("packet record {}: {e}", cap.frames.len())))?;
        if let Err(e) = raw
            .clone()
            .try_into_pcap_packet(header.ts_resolution, header.snaplen)
        {
            cap.unchecked.push(e.to_string());
        }
        cap.frames.push(raw.data.into_owned());
    }
    Ok(cap)
}

fn read_pcapng(reader: BufReader<File>) -> Result<Capture, ReadError> {
    let mut r =
        PcapNgReader::new(reader).map_err(|e| ReadError::Broken(format!("section: {e}")))?;
    let mut cap = Capture {
        frames: Vec::new(),
        unchecked: Vec::new(),
        fcs_bits: None,
    };
    while let Some(block) = r.next_block() {
        let block = block.map_err(|e| {
            ReadError::Broken(format!("block after packet {}: {e}", cap.frames.len()))
        })?;
        let (interface, data) = match block {
            Block::EnhancedPacket(b) => (b.interface_id, b.data.into_owned()),
            Block::SimplePacket(b) => (0, b.data.into_owned()),
            Block::Packet(b) => (u32::from(b.interface_id), b.data.into_owned()),
            _ => continue,
        };
        match r.interfaces().get(interface as usize) {
            Some(i) if i.linktype == DataLink::ETHERNET => {}
            Some(i) => {
                return Err(ReadError::Unsupported(format!(
                    "interface {interface} link type {:?}",
                    i.linktype
                )))
            }
            None => {
                return Err(ReadError::Broken(format!(
                    "packet {} names missing interface {interface}",
                    cap.frames.len()
                )))
            }
        }
        cap.frames.push(data);
    }
    Ok(cap)
}

/// `index.tsv`: file name -> packet count.
pub fn read_index(dir: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(dir.join("index.tsv"))
        .unwrap_or_else(|e| panic!("{}/index.tsv: {e}", dir.display()));
    let mut lines = text.lines();
    let head: Vec<&str> = lines
        .next()
        .expect("index.tsv header")
        .split('\t')
        .collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("index.tsv has no `{name}` column"))
    };
    let (file, packets) = (col("file"), col("packets"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = f[packets]
                .parse()
                .unwrap_or_else(|e| panic!("index.tsv `{l}`: {e}"));
            (f[file].to_string(), n)
        })
        .collect()
}
