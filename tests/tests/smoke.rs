use rampart_tests::{fresh_dataplane, packets, root_or_skip};

#[test]
fn loads_and_passes_a_packet() {
    if !root_or_skip("loads_and_passes_a_packet") {
        return;
    }
    let mut dp = fresh_dataplane();
    let (action, _) = dp
        .test_run(
            &packets::udp4("10.0.0.1", "10.0.0.2", 1000, 53, b"hello"),
            1,
        )
        .unwrap();
    assert_eq!(action, 2);
}
