//! Tests of the substantial-equivalence comparison on real device descriptions.

use super::*;

fn standards(c: &Comparison) -> Vec<&str> {
    c.testing_recommendations
        .iter()
        .map(|r| r.standard.as_str())
        .collect()
}

fn row<'a>(c: &'a Comparison, name: &str) -> &'a Row {
    c.rows.iter().find(|r| r.characteristic == name).unwrap()
}

#[test]
fn a_wireless_software_pump_against_a_plain_one() {
    let subject = SubjectDevice {
        name: "SmartFlow infusion pump",
        description: "Battery powered infusion pump with Bluetooth connectivity and a mobile app; \
                      silicone tubing set, sterilized by ethylene oxide",
        intended_use: "Controlled infusion of fluids into the venous system",
        product_code: Some("FRN"),
        device_class: Some("2"),
        regulation_number: Some("880.5725"),
    };
    let predicate = PredicateDevice {
        k_number: "K123456",
        device_name: "Infusion Pump",
        intended_use: None,
        product_code: Some("FRN"),
        device_class: Some("2"),
        regulation_number: Some("880.5725"),
        definition: Some("An infusion pump is a device used in a health care facility to pump fluids into a patient in a controlled manner."),
        implant_flag: false,
        safety: None,
    };
    let c = compare(&subject, &predicate);
    assert_eq!(row(&c, "Product code").assessment, Assessment::Same);
    assert_eq!(row(&c, "Regulation (21 CFR)").assessment, Assessment::Same);
    let wireless = row(&c, "Connectivity / wireless");
    assert_eq!(wireless.assessment, Assessment::ReviewNeeded);
    assert_eq!(wireless.impact, Impact::High);
    assert!(wireless.subject_device.contains("Bluetooth"));
    assert_eq!(row(&c, "Implantation").assessment, Assessment::Same);
    let s = standards(&c);
    for expected in [
        "IEC 62304",
        "IEC 60601-1-2",
        "IEC 60601-1",
        "IEC 62133-2",
        "ISO 10993-1",
        "ISO 11135 / ISO 10993-7",
        "ISO 14971",
    ] {
        assert!(s.contains(&expected), "{expected} missing from {s:?}");
    }
    assert_eq!(c.risk_assessment.level, "high");
    assert!(c.summary.starts_with("K123456 (Infusion Pump)"));
}

#[test]
fn different_materials_and_regulations_are_differences() {
    let subject = SubjectDevice {
        name: "Spinal screw",
        description: "Pedicle screw made of PEEK",
        intended_use: "Fixation of the spine",
        product_code: Some("NKB"),
        device_class: Some("2"),
        regulation_number: Some("888.3070"),
    };
    let predicate = PredicateDevice {
        k_number: "K082332",
        device_name: "Titanium pedicle screw system",
        product_code: Some("MNI"),
        device_class: Some("3"),
        regulation_number: Some("888.3060"),
        implant_flag: true,
        ..PredicateDevice::default()
    };
    let c = compare(&subject, &predicate);
    let materials = row(&c, "Materials (patient contact)");
    assert_eq!(materials.assessment, Assessment::Different);
    assert_eq!(materials.impact, Impact::High);
    assert_eq!(row(&c, "Product code").assessment, Assessment::Different);
    assert_eq!(row(&c, "Device class").assessment, Assessment::Different);
    assert_eq!(
        row(&c, "Regulation (21 CFR)").assessment,
        Assessment::Similar
    );
    // The predicate is an implant by classification; the subject does not say so.
    assert_eq!(row(&c, "Implantation").assessment, Assessment::ReviewNeeded);
    let s = standards(&c);
    assert!(s.contains(&"ISO 10993-1") && s.contains(&"ISO 10993-5"));
    assert!(!s.contains(&"IEC 62304"), "no software anywhere: {s:?}");
}

#[test]
fn the_same_device_description_is_the_same() {
    let subject = SubjectDevice {
        name: "Face mask",
        description: "Disposable surgical face mask, nonwoven polypropylene",
        intended_use: "Protect patients and staff from transfer of microorganisms",
        product_code: Some("FXX"),
        device_class: Some("2"),
        regulation_number: Some("878.4040"),
    };
    let predicate = PredicateDevice {
        k_number: "K201470",
        device_name: "Disposable Medical Face Mask nonwoven polypropylene",
        intended_use: Some("Protect patients and staff from transfer of microorganisms"),
        product_code: Some("FXX"),
        device_class: Some("2"),
        regulation_number: Some("878.4040"),
        ..PredicateDevice::default()
    };
    let c = compare(&subject, &predicate);
    assert!(
        c.rows.iter().all(|r| r.assessment == Assessment::Same),
        "{:#?}",
        c.rows
    );
    assert_eq!(c.risk_assessment.level, "low");
}
