// kgen conv2d: 72 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read> b_in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 72 { return; }
  let i_q_m: i32 = (i_t0 / 18);
  let i_q_h: i32 = ((i_t0 / 3) % 6);
  let i_q_w: i32 = (i_t0 % 3);
  var acc0: f32 = 0.0;
  var acc1: f32 = 0.0;
  var acc2: f32 = 0.0;
  var acc3: f32 = 0.0;
  for (var i_rc: i32 = 0; i_rc < 4; i_rc = i_rc + 1) {
    for (var i_rh: i32 = 0; i_rh < 3; i_rh = i_rh + 1) {
      let v0: f32 = select(0.0, b_in0[((6 * i_q_h) + (2 * i_q_w) + (36 * i_rc) + (6 * i_rh) - 7)], (((i_q_h + i_rh - 1) >= 0) & ((i_q_h + i_rh - 1) < 6) & (((2 * i_q_w) - 1) >= 0)));
      let v1: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh))];
      let v2: f32 = select(0.0, b_in0[((6 * i_q_h) + (2 * i_q_w) + (36 * i_rc) + (6 * i_rh) - 6)], (((i_q_h + i_rh - 1) >= 0) & ((i_q_h + i_rh - 1) < 6)));
      let v3: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh) + 36)];
      let v4: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh) + 1)];
      let v5: f32 = select(0.0, b_in0[((6 * i_q_h) + (2 * i_q_w) + (36 * i_rc) + (6 * i_rh) - 5)], (((i_q_h + i_rh - 1) >= 0) & ((i_q_h + i_rh - 1) < 6)));
      let v6: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh) + 37)];
      let v7: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh) + 2)];
      let v8: f32 = select(0.0, b_in0[((6 * i_q_h) + (2 * i_q_w) + (36 * i_rc) + (6 * i_rh) - 4)], (((i_q_h + i_rh - 1) >= 0) & ((i_q_h + i_rh - 1) < 6) & (((2 * i_q_w) + 2) < 6)));
      let v9: f32 = b_in1[((72 * i_q_m) + (9 * i_rc) + (3 * i_rh) + 38)];
      acc0 = (acc0 + (v0 * v1));
      acc1 = (acc1 + (v2 * v1));
      acc2 = (acc2 + (v0 * v3));
      acc3 = (acc3 + (v2 * v3));
      acc0 = (acc0 + (v2 * v4));
      acc1 = (acc1 + (v5 * v4));
      acc2 = (acc2 + (v2 * v6));
      acc3 = (acc3 + (v5 * v6));
      acc0 = (acc0 + (v5 * v7));
      acc1 = (acc1 + (v8 * v7));
      acc2 = (acc2 + (v5 * v9));
      acc3 = (acc3 + (v8 * v9));
    }
  }
  b_out[((6 * i_q_h) + (72 * i_q_m) + (2 * i_q_w))] = acc0;
  b_out[((6 * i_q_h) + (72 * i_q_m) + (2 * i_q_w) + 1)] = acc1;
  b_out[((6 * i_q_h) + (72 * i_q_m) + (2 * i_q_w) + 36)] = acc2;
  b_out[((6 * i_q_h) + (72 * i_q_m) + (2 * i_q_w) + 37)] = acc3;
}
