// kgen softmax_0: 3 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_tmp0: array<f32>;
var<private> kgen_inf_bits: u32 = 0x7f800000u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 3 { return; }
  let i_q_i0: i32 = i_t0;
  var acc0: f32 = (-bitcast<f32>(kgen_inf_bits));
  for (var i_r1: i32 = 0; i_r1 < 7; i_r1 = i_r1 + 1) {
    let v0: f32 = b_in0[((7 * i_q_i0) + i_r1)];
    acc0 = max(acc0, v0);
  }
  b_tmp0[i_q_i0] = acc0;
}

// kgen softmax_1: 3 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read> b_tmp0: array<f32>;
@group(0) @binding(2) var<storage, read_write> b_tmp1: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 3 { return; }
  let i_q_i0: i32 = i_t0;
  var acc0: f32 = 0.0;
  for (var i_r1: i32 = 0; i_r1 < 7; i_r1 = i_r1 + 1) {
    let v0: f32 = b_in0[((7 * i_q_i0) + i_r1)];
    let v1: f32 = b_tmp0[i_q_i0];
    acc0 = (acc0 + exp((v0 - v1)));
  }
  b_tmp1[i_q_i0] = acc0;
}

// kgen softmax_2: 21 threads, workgroup 64
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read> b_tmp0: array<f32>;
@group(0) @binding(2) var<storage, read> b_tmp1: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i_t0: i32 = i32((wid.y * nwg.x + wid.x) * 64u + lid.x);
  if i_t0 >= 21 { return; }
  let i_q_i0: i32 = (i_t0 / 7);
  let i_q_i1: i32 = (i_t0 % 7);
  let e0: f32 = b_in0[((7 * i_q_i0) + i_q_i1)];
  let e1: f32 = b_tmp0[i_q_i0];
  let e2: f32 = b_tmp1[i_q_i0];
  b_out[((7 * i_q_i0) + i_q_i1)] = (exp((e0 - e1)) / e2);
}
